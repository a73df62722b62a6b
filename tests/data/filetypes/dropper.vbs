On Error Resume Next
Dim shell
Set shell = CreateObject("WScript.Shell")
shell.Run "notepad.exe", 1, False
WScript.Echo "done"
