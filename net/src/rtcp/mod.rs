//! RTCP compound packets (RFC 3550 §6, RFC 4585, RFC 5104): views over byte slices.
