//! How a test joins the suite: it is written inside its file's one
//! `suite_tests!` invocation, which defines it and also registers it in the
//! file's `tests!` list; `conformance_tests!` (in `mod.rs`) expands every
//! file's list. There is no second list to forget: a test is run on every
//! runtime of every binary that includes its file, or it is not a test.

/// Defines the tests of one suite file, and the file's `tests!` macro that
/// makes one `#[tokio::test]` of each, with the relay on a given runtime:
///
/// ```ignore
/// super::register::suite_tests!(
///     clients, // the file's module, as `suite::clients`
///     curl_epsv(async {
///         curl_upload(&[]).await;
///     }),
/// );
/// ```
///
/// The call syntax (a name, then its body as an `async` block) is
/// deliberate: rustfmt formats it, as it would not a list of `fn` items.
/// Comments go in `//`; a `///` stops rustfmt from formatting the file's
/// tests. One invocation per file (it defines the file's `tests!`).
macro_rules! suite_tests {
    (@list ($d:tt) $module:ident; $($name:ident)*) => {
        /// One `#[tokio::test]` per test of this file, each with the
        /// relay on `$runtime`.
        macro_rules! tests {
            ($d runtime:expr) => {
                $crate::suite::register::on_runtime!($d runtime; $($module::$name,)*);
            };
        }
        pub(crate) use tests;
    };
    ($module:ident, $($name:ident(async $body:block)),* $(,)?) => {
        $(pub(crate) async fn $name() $body)*
        // `$` cannot be written in the macro this defines; it is passed in.
        $crate::suite::register::suite_tests!(@list ($) $module; $($name)*);
    };
}
pub(crate) use suite_tests;

/// One `#[tokio::test]` per named test, each run with the relay on
/// `$runtime` (the test clients always run on tokio).
macro_rules! on_runtime {
    ($runtime:expr; $($module:ident :: $name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::suite::support::RUNTIME
                    .scope($runtime, $crate::suite::$module::$name())
                    .await
            }
        )*
    };
}
pub(crate) use on_runtime;
