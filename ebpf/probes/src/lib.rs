//! The probes are a binary for the BPF target; this empty library exists so the agent can
//! declare a build-dependency on the package and be rebuilt when the probes change.
#![no_std]
