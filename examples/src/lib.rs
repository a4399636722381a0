//! Shared helpers of AURA's example frontends.
