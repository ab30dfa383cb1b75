"""One reaction per module; ``main.py`` wires them to kopf."""
