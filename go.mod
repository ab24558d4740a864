module pbxha

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/atc0005/go-nagios v0.20.0
	github.com/spf13/pflag v1.0.10
)

require github.com/stretchr/testify v1.12.1 // indirect
