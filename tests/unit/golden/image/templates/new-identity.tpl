written by LXD when this environment was copied
