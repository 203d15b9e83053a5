//! The demo app as a cargo example: `cargo run --example demo_app -- 8090 v2+fail=0.3`.
//! The same app is `teal demo-app --port P --revision R`, which `teal demo` runs.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: demo_app PORT REVISION");
    let revision = args.next().unwrap_or_else(|| "v1".into());
    let behaviour = teal::local::app::Behaviour::parse(&revision).map_err(std::io::Error::other)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(teal::local::app::serve(port, behaviour, "/healthz".into()))
}
