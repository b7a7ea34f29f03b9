//! DTLS-SRTP for WebRTC transports: certificate, DTLS 1.2 endpoint (RFC 5764), SRTP sessions.
