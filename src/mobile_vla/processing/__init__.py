"""The processor shared by training, evaluation and serving."""

from mobile_vla.processing.processor import ActionStats, Processor, ProcessorConfig

__all__ = ["ActionStats", "Processor", "ProcessorConfig"]
