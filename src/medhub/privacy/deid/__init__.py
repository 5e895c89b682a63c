"""De-identification of FHIR, DICOM and biosignal items, one module per modality.

`common` holds what the modalities share: the per-source secrets (pseudonyms, the secret
per-patient date shift, the keyed UID remapping) and the policy options.
"""
