# Makes the config tree importable as package data (gradsweep.conf) in installed copies.
