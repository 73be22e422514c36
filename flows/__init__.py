"""The original library's example workflows, ported: their step names, keys and state fields
are the original's, so its snapshots resume here."""
