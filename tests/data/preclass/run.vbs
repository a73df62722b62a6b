Set shell = CreateObject("WScript.Shell")
shell.Run "notepad.exe", 1, False
