"""Draw a digit in the browser: the web app and HTTP API around the notebook's saved model."""
