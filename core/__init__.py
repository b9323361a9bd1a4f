"""s3tail core: parsers, event model, sources, rules, posture, store. Never imports Textual."""
