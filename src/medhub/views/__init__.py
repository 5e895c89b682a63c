"""SQL on FHIR v2: ViewDefinition parsing, FHIRPath, compilation to SQL."""
