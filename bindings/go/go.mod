module github.com/knsock/knsock/bindings/go

go 1.22
