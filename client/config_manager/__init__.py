"""The connector's local configuration, with its secrets kept by the operating system."""
