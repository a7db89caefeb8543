//! Media tasks: admission, supervision of hearth-media workers, uploads.
