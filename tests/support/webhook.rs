//! A loopback webhook server for the notification tests: it answers as
//! told and keeps the JSON bodies it received.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// How a test server answers.
#[derive(Clone, Copy)]
pub enum Answer {
    Ok,
    Status500,
    /// Read the request, then never answer (the connection stays open).
    Hang,
}

/// A loopback webhook server: its URL (with a secret-looking path) and the
/// bodies it received.
pub fn server(answer: Answer, secret: &str) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/{secret}", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let bodies = got.clone();
    std::thread::spawn(move || {
        let mut held = vec![];
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            // One request per connection is enough for these tests; the
            // client opens another when this one is not kept.
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    bodies
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    break;
                }
            }
            match answer {
                Answer::Ok => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                }
                Answer::Status500 => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                }
                Answer::Hang => held.push(stream),
            }
        }
    });
    (url, got)
}
