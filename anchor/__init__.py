"""The recorder and the log: records, the RFC 9162 Merkle log, receipts, anchoring, the audit trail."""
