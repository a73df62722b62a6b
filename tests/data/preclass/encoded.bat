@echo off
powershell.exe -NoProfile -WindowStyle Hidden -enc VwByAGkAdABlAC0ASABvAHMAdAA=
