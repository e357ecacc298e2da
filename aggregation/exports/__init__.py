"""Dataset export and import in the RichHF-18K release format and friendlier formats.

Data flows one way: aggregates (or imported ground truth) -> ExportRecord -> a writer.
Every writer streams: one item in memory at a time, whatever the campaign's size.
"""
