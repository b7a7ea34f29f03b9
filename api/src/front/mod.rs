//! PLACEHOLDER: the mio HTTP/WebSocket/console front (being written).
