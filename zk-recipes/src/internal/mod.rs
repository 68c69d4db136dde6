//! Building blocks shared by the recipes (sequence nodes, waiting for deletes, parents).
