"""First-party plugins: registered through the same pluggy hooks a third party uses."""
