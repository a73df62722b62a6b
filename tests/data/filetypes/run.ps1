$url = "http://example.invalid/a.txt"
$client = New-Object Net.WebClient
$data = $client.DownloadString($url)
Write-Host $env:TEMP
