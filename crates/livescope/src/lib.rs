//! livescope: a self-hosted personal livestreaming server. Publish over RTMP or a chunked
//! HTTP POST of FLV; watch over RTMP or HTTP-FLV; manage broadcasts over a JSON API.

pub mod access;
pub mod api;
pub mod app;
pub mod auth;
pub mod broadcast;
pub mod config;
pub mod conn_limit;
pub mod delay;
pub mod hls;
pub mod http;
pub mod http_server;
pub mod hub;
pub mod integrity;
pub mod loadgen;
pub mod metrics;
pub mod notify;
pub mod peer;
pub mod playback;
pub mod playout;
pub mod plot;
pub mod room;
pub mod rtmp_server;
pub mod seed;
pub mod send;
pub mod server;
pub mod signing_key;
pub mod sim;
pub mod stall;
pub mod stats;
pub mod store;
pub mod timeline;
pub mod tls;
pub mod trace;
pub mod watch;
pub mod web;
