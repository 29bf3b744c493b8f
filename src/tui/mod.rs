//! The curation workbench: a window onto the engine. Never touches a file or the model.
