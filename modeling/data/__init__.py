"""Data formats: TFRecord framing, tf.train.Example, the RichHF release schema, datasets."""
