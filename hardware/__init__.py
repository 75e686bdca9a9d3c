"""Drivers for real devices behind small interfaces: card readers and cameras."""
