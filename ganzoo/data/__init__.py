"""The data layer: in-memory data sets served as batches (see :mod:`ganzoo.data.base`)."""
