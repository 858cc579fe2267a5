module example.com/knsock-consumer

go 1.22

require github.com/knsock/knsock/bindings/go v0.0.0
