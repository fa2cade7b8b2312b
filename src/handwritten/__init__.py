"""handwritten: recognise handwritten digits, on MNIST and on the digits people really draw."""

__version__ = "0.1.0"
