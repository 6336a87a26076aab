//! Properties for fuzzing (filled below).
