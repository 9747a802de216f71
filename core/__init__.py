"""The layer every package may import: where everything lives (`settings`, `SEGMENTA_HOME`) and
the one interface Python steps use to read and write the warehouse (`warehouse`)."""
