//! The README shows `examples/per_user_dirs.rs`; they must not drift apart.

#[test]
fn the_readme_example_is_the_example_file() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../examples/per_user_dirs.rs");
    let block = readme
        .split("```rust,no_run\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a rust,no_run block");
    assert_eq!(
        block, example,
        "update the README's example from the example file"
    );
}
