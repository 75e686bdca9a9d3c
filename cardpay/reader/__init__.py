"""The reader daemon beside each till: reads cards, journals taps, asks the server."""
