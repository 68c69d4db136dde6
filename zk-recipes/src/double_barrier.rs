//! Placeholder: implemented on the `recipes-b` branch.
