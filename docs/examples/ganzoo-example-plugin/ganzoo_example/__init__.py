"""Example ganzoo plugin: PacGAN (architecture) and RSGAN (loss). See docs/plugins.md."""

__version__ = "0.1.0"
