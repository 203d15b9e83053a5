//! A static site, a front end's build directory, as teal deploys it.
//!
//! - [`files`]: the files of a build and the headers a CDN caches each by:
//!   entry documents (`*.html`) revalidated every time, content-hashed
//!   assets (`app.3f9a1c2b.js`) kept for a year and never revalidated.
//! - [`skew`]: version skew, the front end's typical failure. A browser that
//!   loaded blue's `index.html` goes on asking for the assets it names after
//!   green takes the traffic; [`skew::missing`] lists those green's build
//!   lacks, so a `before-traffic` hook stops such a build before any user
//!   meets it.
//!
//! Pure but for reading the build: the local provider serves a build with
//! it (`crate::local::site`), and a fleet that uploads one would too.

pub mod files;
pub mod skew;
