@echo off
set /p name=Name:
if exist "%TEMP%\x.txt" del "%TEMP%\x.txt"
goto :eof
