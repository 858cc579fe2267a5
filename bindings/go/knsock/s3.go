package knsock

// Storing received files in an S3-compatible bucket: ServerConfig's S3 fields, set on the C
// config through knsock_server_config_set_s3() and the setters that adjust it.

/*
#include <stdlib.h>
#include <knsock.h>
*/
import "C"

import "unsafe"

// applyS3 sets a ServerConfig's S3 settings on c. Only those given are set: the C adjusters
// refuse to run before knsock_server_config_set_s3(), and so an adjuster without S3 fails.
func (cfg *ServerConfig) applyS3(c *C.knsock_server_config) error {
	set := configSetter{c}
	return run([]step{
		set.str(cfg.S3, "S3 URL", func(c *C.knsock_server_config, s *C.char) C.enum_knsock_result {
			return C.knsock_server_config_set_s3(c, s)
		}),
		set.str(cfg.S3Endpoint, "S3 endpoint", func(c *C.knsock_server_config, s *C.char) C.enum_knsock_result {
			return C.knsock_server_config_set_s3_endpoint(c, s, C.bool(cfg.S3PathStyle))
		}),
		set.str(cfg.S3Region, "S3 region", func(c *C.knsock_server_config, s *C.char) C.enum_knsock_result {
			return C.knsock_server_config_set_s3_region(c, s)
		}),
		func() error {
			if cfg.S3AccessKey == "" && cfg.S3SecretKey == "" && cfg.S3SessionToken == "" {
				return nil
			}
			// An empty one goes as NULL: the keys are then refused by name, a token left out.
			var keys [3]*C.char
			for i, v := range []string{cfg.S3AccessKey, cfg.S3SecretKey, cfg.S3SessionToken} {
				if v == "" {
					continue
				}
				cs, err := cstr(v, "S3 credentials")
				if err != nil {
					return err
				}
				defer C.free(unsafe.Pointer(cs))
				keys[i] = cs
			}
			return set.fail(C.knsock_server_config_set_s3_credentials(c, keys[0], keys[1], keys[2]), "S3 credentials")
		},
		set.str(cfg.S3CAFile, "S3 CA file", func(c *C.knsock_server_config, s *C.char) C.enum_knsock_result {
			return C.knsock_server_config_set_s3_ca_file(c, s)
		}),
	})
}
