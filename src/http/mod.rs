//! HTTP: the embedded page, signaling and the JSON API.
