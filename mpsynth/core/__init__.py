"""What every layer may use: errors, the Arrow schemas, platform names, the console, fingerprints\nand file locations (local paths or object-storage URIs).\n"""
