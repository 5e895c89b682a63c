"""The lake: Parquet datasets partitioned by source and type, a catalog over them, and
content-addressed blobs (de-identified DICOM files, waveform arrays).

Only gated (pseudonymized, de-identified) data is ever written here.
"""
