"""The deck's small CNN on 28x28 images: ``data`` (the data sets as Keras reads them), ``networks``
(the deck's CNN and an improved preset), ``training`` (live training and evaluation), ``digits``
(your own digit, prepared as MNIST's were)."""
