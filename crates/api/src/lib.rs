//! TencentCloud API 3.0 gateway.
