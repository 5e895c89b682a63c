"""De-identification of FHIR, DICOM and biosignal items, one module per modality.

`common` holds what the modalities share: the per-source secrets (pseudonyms, the secret
per-patient date shift, the keyed UID remapping) and the policy options.
"""


def clear_caches() -> None:
    """Empty every cache the de-identification of FHIR keeps at module level (shifted dates,
    cleaned texts, rewritten references, pseudonymized identifiers, name keys), so that the next
    ingestion starts as cold as a fresh process: benchmarks measure each run cold, tests start
    from nothing. A source's own pseudonyms (`SourceSecrets`) live and go with its gate."""
    from medhub.privacy.deid import dates, fhir, fhir_elements, text

    text.clear_text_cache()
    fhir_elements.clear_walk_caches()
    fhir.clear_reference_cache()
    for cached in (dates.shift_fhir, dates.shift_da, dates.shift_dt):
        cached.cache_clear()
