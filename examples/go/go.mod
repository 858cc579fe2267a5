module example.com/knsock-example

go 1.22

require github.com/knsock/knsock/bindings/go v0.0.0

replace github.com/knsock/knsock/bindings/go => ../../bindings/go
